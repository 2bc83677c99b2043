"""KFP v2 lightweight components, one per pipeline step (`verb_noun`), each a typed shell around one call into
`ufvideo.pipeline.steps`: artifacts carry URIs, digests and metrics, never the payloads (those stay in the workspace).
"""
