"""What runs on the device itself. ``latency_probe.py`` is a standalone script (standard library,
numpy and a runtime: ai-edge-litert or tflite-runtime) that ``edgepack profile`` runs in a child
process here, or copies to a board and runs there over SSH. It imports nothing from edgepack."""
