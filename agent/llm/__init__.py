"""Language-model providers behind one protocol: anthropic (the only importer of the SDK), openai, offline."""
