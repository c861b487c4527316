"""Local doubles of the payment channels' servers, written from their published documentation."""
