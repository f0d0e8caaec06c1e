"""Examples of docs/how-to/device-names.md: naming the device of each session."""
