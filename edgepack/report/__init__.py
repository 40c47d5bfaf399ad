"""The run report (report.json, report.md and report.html, plots embedded as SVG) and the page
comparing several bundles (``edgepack report``)."""
