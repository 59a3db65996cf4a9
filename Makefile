.PHONY: test lint demo

test:
	python3 -m pytest -q -p no:cacheprovider tests

lint:
	python3 -m ruff check xlray tests
	python3 -m ruff format --check xlray tests

demo:
	xlray demo
