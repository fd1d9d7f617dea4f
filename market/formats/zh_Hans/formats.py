# Money and tonnes read the way Chinese business documents print them: ¥69,332.00, 1,234.500 吨.
# (Django's zh_Hans locale has no thousands separator and groups by four.) Everything else falls
# back to Django's own zh_Hans formats.
THOUSAND_SEPARATOR = ","
NUMBER_GROUPING = 3
