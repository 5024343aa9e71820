"""Medical 2D slice synthesis: volumes (NIfTI, DICOM, slice folders) -> slices -> GAN -> synthetic stacks."""
