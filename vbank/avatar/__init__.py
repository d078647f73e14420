"""The digital human's face: a video track drawn from sprites prepared once at start-up."""
