"""Workflows (issue 11): convert, quantize, fine-tune, each wrapping the library's own tool with
diagnostics before and verification after. Layer: above bench/, below project/."""
