"""Task models built from rnn_jax's stacks: language_model, classifier, tagger (one tag per token) and
seq2seq (encoder-decoder with or without attention; seq2seq_decoding translates by beam search)."""
