"""Running .tflite models: one layer over ai-edge-litert, tflite_runtime and tf.lite."""
