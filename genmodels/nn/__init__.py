"""Reusable network blocks (plain ``nn.Module``s), one file per kind of block."""
