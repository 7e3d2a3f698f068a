"""All of Chute's SQL, one module per table family. Functions take a connection and never commit."""
