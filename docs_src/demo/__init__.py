"""What docs/demo.md shows of the demo."""
