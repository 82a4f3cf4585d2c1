"""Rendering: terminal tables now; Markdown and HTML reports later."""
