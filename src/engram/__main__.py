from engram.cli.main import app

app(prog_name="engram")
