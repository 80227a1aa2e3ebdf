"""The data mover's established calls (move, check_move_status, ALA occurrence pulls)."""
