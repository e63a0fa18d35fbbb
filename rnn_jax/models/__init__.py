"""Task models built from rnn_jax's specs: language_model (more to come: tagger, classifier, seq2seq)."""
