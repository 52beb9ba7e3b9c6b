"""Work on KIE tasks: submitting (guard, pacing), following (due rows, one tick), archiving results."""
