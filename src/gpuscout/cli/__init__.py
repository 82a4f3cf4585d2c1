"""Thin Typer commands over the library: each command calls one library function."""
