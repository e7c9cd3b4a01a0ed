"""Relais matching engine: French text analysis, embeddings, FAISS index, ranking, explanations.

A plain library: it knows nothing of Flask, the web layer or the database session.
"""
