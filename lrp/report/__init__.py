"""Presentation: figures, logos, the HTML report, the UCSC track hub and IGV sessions."""
