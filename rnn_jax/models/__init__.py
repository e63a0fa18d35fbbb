"""Task models built from rnn_jax's stacks: language_model and classifier (more to come: tagger, seq2seq)."""
