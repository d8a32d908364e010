"""buurtlens: qualitative analysis of Dutch conversation transcripts."""
