"""The workshop behind the bundled ShapesWorld model: training loops, model builders, tokenizers,
export and quality reports. Uses pix2pix-zero's public API; the product never imports it."""
