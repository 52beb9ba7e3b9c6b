"""Takes into a reel: the last frame of a take (to continue from it), and many takes exported as one MP4."""
