"""Pure, vectorised device physics: numpy arrays in, numpy arrays out."""
