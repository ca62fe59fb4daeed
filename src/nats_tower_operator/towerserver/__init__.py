"""towerserver package."""
