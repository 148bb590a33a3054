"""Training: weights, dropout, objectives (batch losses) and the trainer loop."""
