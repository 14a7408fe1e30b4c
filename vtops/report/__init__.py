"""`vtops report`: the article's indicators for a period, as one page the city's leaders open.

`period` says which hours and days a report covers, `queries` reads every number from
ClickHouse (the dashboards' own SQL where a panel shows the same thing, `sql` for the rest),
`language` holds the words and number formats of each language, `charts` draws the pictures
and `page` puts them into one self-contained HTML file.
"""
