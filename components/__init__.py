"""KFP v2 lightweight components, one per pipeline step (`verb_noun`), each a typed shell around one call into
`ufvideo.pipeline.steps`: artifacts carry URIs, digests and metrics, never the payloads (those stay in the workspace).

Each module holds the plain function (documented with `Args:`, callable and testable as is) and `component(image)`,
the factory that binds it to a container image; the pipeline calls the factories when it is built.
"""
