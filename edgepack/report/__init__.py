"""The run report: report.json, report.md and report.html (plots embedded as SVG)."""
