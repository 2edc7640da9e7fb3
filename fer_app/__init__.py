"""fer_app: facial-expression recognition on FER-2013, built on the tinycnn engine."""
