"""Readers that turn each data set's label table and frame folders into the same clip records."""
