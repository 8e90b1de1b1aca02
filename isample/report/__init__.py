"""From .xlsx records to conclusions: reading records, facts and named rules, text, figures. No torch."""
