"""ReDial benchmark, iEvaLM "Original" protocol: scored through the product's own reader and ranker."""
