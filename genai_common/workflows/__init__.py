"""Workflows (issue 11): convert, quantize, fine-tune, port; each wraps the library's own tool
with diagnostics before and verification after. Layer: above bench/, below project/."""
