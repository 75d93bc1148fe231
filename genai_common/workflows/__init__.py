"""Workflows: convert, quantize, fine-tune, port; each wraps the library's own tool."""
