"""Run every benchmarks/bench_*.py module's `main()` in name order, or those whose names contain a word given:

    python -m benchmarks                              # all of them (`make bench`)
    python -m benchmarks --list                       # their names
    python -m benchmarks methods -- --minutes 2,4     # options after `--` go to each chosen module's main(argv)
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import sys
import time

import benchmarks


def names() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(benchmarks.__path__) if m.name.startswith("bench_"))


def main(argv: list[str]) -> None:
    words, options = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, None)
    if words == ["--list"]:
        print("\n".join(n.removeprefix("bench_") for n in names()))
        return
    chosen = [n for n in names() if not words or any(w in n for w in words)]
    if not chosen:
        raise SystemExit(f"no benchmark matches {' '.join(words)}; the benchmarks: "
                         + ", ".join(n.removeprefix("bench_") for n in names()))
    mains = {n: importlib.import_module(f"benchmarks.{n}").main for n in chosen}
    if options is not None:
        takes_none = [n for n, fn in mains.items() if not inspect.signature(fn).parameters]
        if takes_none:
            raise SystemExit(f"{', '.join(takes_none)}: takes no options (give them only to benchmarks that do)")
    for name, fn in mains.items():
        print(f"\n=== {name} ===", flush=True)
        t0 = time.perf_counter()
        fn() if options is None else fn(options)
        print(f"({name}: {time.perf_counter() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
