"""The embedding server on a lent GPU (issue 13, item 7): `prepare` fills `.gpu/` here, `run` measures
there in one call. README "Embedding server on a GPU" has the commands."""
