"""`svpn plan`: sizing a farm for a number of users and the capacity document.

numbers < defaults < validators; tuning < model < layout, sizing < inputs (layers -> PlanInput), plan
(`make_plan`), report (text and JSON), capacity_doc (CAPACITY.md and its chart). Imports svpn.farm and
svpn.core.
"""
