"""The Streamlit app. Reads the catalogue through `indexer`."""
