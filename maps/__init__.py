"""What people look at: HTML maps, the vector tile encoder and the planner's editor page."""
