"""The running worker: batch processing, the window sweeper and the Faust application."""
