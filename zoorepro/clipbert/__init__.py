"""ClipBERT finetuned and evaluated on ANetQA (document 003, issue 11): the project's own ClipBERT
(model.py) and the document's data and scoring steps. Not yet a registered model (no pipeline.py,
no rules file): the DAG, mini chain and tables are the issue's next steps."""
