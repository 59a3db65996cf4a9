"""Does xlray find what is there? Measurements on the synthetic world compared with its ground truth."""
