.PHONY: test lint demo

# The README's commands; make is a convenience, not needed.
test:
	python -m pytest -q -p no:cacheprovider tests

lint:
	python -m ruff check xlray tests
	python -m ruff format --check xlray tests

demo:
	xlray demo
