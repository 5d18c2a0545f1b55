package main

// version is stamped at build time (-X main.version=...) with the engine's release.
var version = "3.0.0"
