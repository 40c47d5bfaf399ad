"""What the device pays for a model: flash, RAM (tensor arena), MACs and latency."""
