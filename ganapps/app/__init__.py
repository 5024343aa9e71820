"""The local web app (`ganapps app`): translate images and clips, continue clips, sample slices and read run
reports in a browser, on the same pipelines and with the same one-line errors as the CLI.

settings (limits) -> catalog (what may be loaded) -> work (the jobs) -> status (one-line results and errors)
-> ui (the Gradio page) -> cli.
Only `ui` imports Gradio (the optional extra `ganapps[app]`); the engine and the task packages never import this.
"""
