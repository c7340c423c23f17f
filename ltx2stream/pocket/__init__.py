"""The pocket model: a small LTX-2 of the project's own classes, trained on CPU on the procedural world."""
