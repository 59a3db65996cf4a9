from xlray.cli import run

run()
