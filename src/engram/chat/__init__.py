"""`engram chat`: a conversation with memory, and its terminal."""
