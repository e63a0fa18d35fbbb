"""Task models built from rnn_jax's stacks: language_model, classifier, tagger (one tag per token),
seq2seq (encoder-decoder with or without attention; seq2seq_decoding translates by beam search) and
captioner (Show and Tell, Show, Attend and Tell over image features; image_encoder is the small CNN trained
with it; caption_decoding captions by beam search)."""
